"""Cell lists of the numbered notebooks, one module per notebook (see tools/build_notebooks.py)."""
