"""`python -m shared` is not the local host any more: it lives in devhost/, which is not deployed."""

import sys

if __name__ == "__main__":
    print("The local host moved out of shared/: run `python -m devhost serve`.", file=sys.stderr)
    sys.exit(2)
