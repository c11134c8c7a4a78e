"""runner: a CI system that runs every job in throwaway Linux containers it makes itself."""

__version__ = "0.1.0"
