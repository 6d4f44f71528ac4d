"""Classification metrics: binary reports (ROC/PR-AUC, recall at stated operating points) and per-class metrics."""
