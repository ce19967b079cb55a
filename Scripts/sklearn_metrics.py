#!/usr/bin/env python3
"""Independent reference for feedbackd's monitor figures: reads `label,score` CSV lines from
the file given as the first argument and prints ROC AUC and log loss from scikit-learn."""
import json
import sys

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

data = np.loadtxt(sys.argv[1], delimiter=",", ndmin=2)
labels, scores = data[:, 0], data[:, 1]
print(json.dumps({
    "auc": float(roc_auc_score(labels, scores)),
    "log_loss": float(log_loss(labels, scores, labels=[0, 1])),
    "rows": int(len(labels)),
}))
