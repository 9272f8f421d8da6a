"""Semi-supervised clustering with 100 labels (GAN-EM Sec. 5.3).

Run:  python examples/semi_supervised.py      (about 3 minutes on a 2-core CPU)

``semi_supervised=True`` and ``fit(X, y)`` with ``-1`` for unlabeled rows: the E-step also
trains the E-net on the labeled rows, and cluster ``k`` then means class ``k``. Compares with the same model fitted without
labels; accuracy is measured on the 1,697 rows whose labels were hidden. Saves
``figures/semi_supervised.png`` (the confusion matrix of the semi-supervised fit).
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, confusion_matrix

from _plotting import pyplot, save
from skganem import GANEMClustering, clustering_accuracy

X, y = load_digits(return_X_y=True)
rng = np.random.RandomState(0)
labeled = np.concatenate([rng.choice(np.flatnonzero(y == c), 10, replace=False)
                          for c in range(10)])  # 10 labels per class
y_partial = np.full_like(y, -1)
y_partial[labeled] = y[labeled]
hidden = y_partial == -1

# n_init=1: one training run per fit (the default makes three on small image sets)
params = dict(n_clusters=10, image_shape=(8, 8), n_iter=8, n_init=1, random_state=0)
semi = GANEMClustering(semi_supervised=True, **params).fit(X, y_partial)
unsup = GANEMClustering(**params).fit(X)
print(f"100 labels, plain accuracy on the hidden rows (cluster k = class k): "
      f"{accuracy_score(y[hidden], semi.labels_[hidden]):.3f}")
print(f"no labels, Hungarian-matched accuracy on the same rows:             "
      f"{clustering_accuracy(y[hidden], unsup.labels_[hidden]):.3f}")

plt = pyplot()
fig, ax = plt.subplots(figsize=(5, 4.5))
ax.imshow(confusion_matrix(y[hidden], semi.labels_[hidden]), cmap="Blues")
ax.set_xlabel("cluster")
ax.set_ylabel("true digit")
ax.set_title("100 labels: hidden rows")
save(fig, "semi_supervised.png")
