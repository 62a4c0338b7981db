"""dreamchat: a local chat assistant that remembers across days by sleeping."""

__version__ = "0.1.0"
