"""A stand-in benchmark for the runner's tests: prints one line, exits 3 (failed)."""

import sys

if __name__ == "__main__":
    print("fake_failed ran")
    sys.exit(3)
