# Corpus sources 'moseas' and 'folder' (issue 7): rules land here.
