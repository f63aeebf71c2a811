"""Plots for the reports (seaborn/matplotlib).

Every function takes ``ax=None`` (a new figure when None), draws one titled figure with
labelled axes (units in the labels) and returns the Axes, so tests inspect it on Agg.
Sections follow the stages; helpers used by one section stay in it with a leading ``_``.
"""

from __future__ import annotations

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def _ax(ax=None, figsize=(7, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


# ---------------------------------------------------------------- exploration


# ---------------------------------------------------------------- clustering and profiling


# ---------------------------------------------------------------- CLV


# ---------------------------------------------------------------- A/B evaluation
