"""`python -m loader`: the district-benchmarks command line."""
from .cli import main

if __name__ == "__main__":    # not when a spawned converter process (loader.bulk) re-imports the main module
    main()
