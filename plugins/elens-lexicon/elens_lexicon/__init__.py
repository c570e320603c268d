"""elens-lexicon: evasion-resistant term matching (text check ``lexicon``) and a
replacement-table prompt reviser (``replace``). Also the template for new plugins."""

__version__ = "0.1.0"
