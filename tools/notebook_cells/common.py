"""Helpers and shared cells for the notebook cell modules."""

from nbformat.v4 import new_code_cell, new_markdown_cell


def md(text):
    return new_markdown_cell(text.strip())


def code(text, *, parameters=False):
    cell = new_code_cell(text.strip())
    if parameters:
        cell.metadata["tags"] = ["parameters"]
    return cell


SETUP = """
%matplotlib inline
import warnings
warnings.filterwarnings("ignore", category=UserWarning)
import pandas as pd
from IPython.display import display
pd.set_option("display.max_columns", 30)
pd.set_option("display.width", 160)
"""

OPEN_WS = """
from imgcls.config import open_workspace
from imgcls.sample import build_sample

# The zoo sample unless WORKSPACE names your own project folder.
ws = (open_workspace(WORKSPACE) if WORKSPACE
      else build_sample(SAMPLE_DIR, image_size=SAMPLE_IMAGE_SIZE, pool_size=SAMPLE_POOL_SIZE, overwrite=True))
ws = ws.with_cutoff(CUTOFF)
ws
"""

