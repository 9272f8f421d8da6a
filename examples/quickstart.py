"""Quick start: cluster scikit-learn's handwritten digits with GAN-EM.

Run:  python examples/quickstart.py
Fits GANEMClustering on the 1,797 8x8 digit images, passed as the flat (1797, 64) array that
load_digits returns (recognised as images, so conv nets are used; a few minutes on a 2-core
CPU, seconds on a GPU) and compares it with KMeans using the Hungarian-matched accuracy and
the adjusted Rand index.
"""

import time

from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score

from skganem import GANEMClustering, clustering_accuracy

X, y = load_digits(return_X_y=True)

t0 = time.perf_counter()
# n_iter=12 and n_init=1 keep the example short; the defaults make 22 EM iterations and, on
# image sets of at most 5,000 rows, three training runs (the best separated one is kept).
est = GANEMClustering(n_clusters=10, n_iter=12, n_init=1, random_state=0, verbose=1)
labels = est.fit_predict(X)
seconds = time.perf_counter() - t0

km = KMeans(n_clusters=10, n_init=10, random_state=0).fit(X)
print(f"GANEMClustering  ACC {clustering_accuracy(y, labels):.3f}  "
      f"ARI {adjusted_rand_score(y, labels):.3f}  ({seconds:.0f} s on {est.device_})")
print(f"KMeans           ACC {clustering_accuracy(y, km.labels_):.3f}  "
      f"ARI {adjusted_rand_score(y, km.labels_):.3f}")
print("image shape used:", est.image_shape_)
print("embedding:", est.transform(X).shape, " soft assignments:", est.predict_proba(X).shape)
samples, clusters = est.sample(10, cluster=list(range(10)), random_state=0)
print("one generated digit per cluster:", samples.shape)
