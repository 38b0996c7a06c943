"""vcbench: build DEVC-style training sets and rank video colorization models on one exact leaderboard."""

__version__ = "0.1.0"
PROTOCOL_VERSION = "vcbench-v1"
