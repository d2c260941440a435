# Stage 'text': rules land here (see DESIGN.md). No rule pretends to work before it does.
