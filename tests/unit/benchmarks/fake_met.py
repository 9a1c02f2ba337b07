"""A stand-in benchmark for the runner's tests: prints one line, exits 0 (met)."""

import sys

if __name__ == "__main__":
    print("fake_met ran")
    sys.exit(0)
