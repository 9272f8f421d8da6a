"""What a fitted model holds: generated samples per cluster, training curves, confusion matrix.

Run:  python examples/model_report.py      (about 2 minutes on a 2-core CPU)

Fits GANEMClustering on the digits once and saves three figures:

* ``figures/samples_per_cluster.png``: ``sample(cluster=k)`` for every cluster, one row each;
* ``figures/training_curves.png``: the losses recorded in ``history_`` per EM iteration;
* ``figures/confusion_matrix.png``: clusters (reordered by the Hungarian matching) against the
  true digits.
"""

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.datasets import load_digits
from sklearn.metrics import confusion_matrix

from _plotting import pyplot, save
from skganem import GANEMClustering, clustering_accuracy

X, y = load_digits(return_X_y=True)
# n_init=1: one training run (the default makes three on small image sets)
est = GANEMClustering(n_clusters=10, image_shape=(8, 8), n_iter=12, n_init=1, random_state=0,
                      verbose=1).fit(X)
print(f"ACC {clustering_accuracy(y, est.labels_):.3f}")
plt = pyplot()

# 1) generated samples, 8 per cluster
per = 8
samples, clusters = est.sample(10 * per, cluster=np.repeat(np.arange(10), per), random_state=0)
fig, axes = plt.subplots(10, per, figsize=(per * 0.7, 10 * 0.7))
for ax, img in zip(axes.ravel(), samples.reshape(-1, 8, 8)):
    ax.imshow(img, cmap="gray_r", vmin=0, vmax=16)
    ax.set_axis_off()
fig.suptitle("sample(cluster=k), one row per cluster")
save(fig, "samples_per_cluster.png")

# 2) training curves from history_
its = [h["iteration"] for h in est.history_]
fig, ax = plt.subplots(figsize=(6, 3.5))
for key in ("loss_d", "loss_g", "loss_e"):
    ax.plot(its, [h[key] for h in est.history_], "o-", label=key)
ax.set_xlabel("EM iteration")
ax.set_ylabel("mean loss")
ax.legend()
save(fig, "training_curves.png")

# 3) confusion matrix, clusters matched to classes
cm = confusion_matrix(y, est.labels_)
_, order = linear_sum_assignment(cm, maximize=True)
fig, ax = plt.subplots(figsize=(5, 4.5))
ax.imshow(cm[:, order], cmap="Blues")
for i in range(10):
    for j in range(10):
        if cm[i, order[j]]:
            ax.text(j, i, cm[i, order[j]], ha="center", va="center", fontsize=6)
ax.set_xticks(range(10), order)
ax.set_xlabel("cluster (matched order)")
ax.set_ylabel("true digit")
save(fig, "confusion_matrix.png")
