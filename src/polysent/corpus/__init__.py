"""Corpus sources (demo synthesizer, CMU-MOSEAS, folder) that produce the segment manifest."""
