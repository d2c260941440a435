"""polysent: multilingual multimodal sentiment analysis, from raw monologue videos to the paper's tables.

All real logic lives in this package; the Snakemake rules only wire files to these functions.
Nothing here imports Snakemake.
"""

__version__ = "0.1.0"
