"""A stand-in benchmark for the runner's tests: prints one line, exits 1 (missed)."""

import sys

if __name__ == "__main__":
    print("fake_missed ran")
    sys.exit(1)
