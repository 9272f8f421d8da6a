"""Dimensionality reduction: GAN-EM's embedding, plotted and fed to a classifier in a Pipeline.

Run:  python examples/embedding_pipeline.py      (about 2 minutes on a 2-core CPU)

``GANEMClustering.transform`` returns the E-net's layer r (``n_components`` units, GAN-EM
Sec. 5.4). The clustering is fitted on the training rows without their labels; a logistic
regression is then trained on the embedding of the same rows and scored on held-out rows.
In the Pipeline, ``fit(X_train, y_train)`` passes ``y`` to GAN-EM too, which ignores it
unless ``semi_supervised=True``: the embedding stays unsupervised.
Saves ``figures/embedding.png``: the held-out rows' embedding projected to 2-D by PCA,
coloured by their true digit.
"""

import time

from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from _plotting import pyplot, save
from skganem import GANEMClustering

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                    stratify=y)
# n_init=1: one training run (the default makes three on small image sets)
gan = GANEMClustering(n_clusters=10, n_components=32, image_shape=(8, 8), n_iter=10,
                      n_init=1, random_state=0)
t0 = time.perf_counter()
pipe = make_pipeline(gan, LogisticRegression(max_iter=2000)).fit(X_train, y_train)
print(f"GAN-EM fitted in {time.perf_counter() - t0:.0f} s; embedding {gan.transform(X_test).shape}")
print(f"logistic regression on the 32-d GAN-EM embedding: test accuracy "
      f"{pipe.score(X_test, y_test):.3f}")
raw = LogisticRegression(max_iter=2000).fit(X_train, y_train)
print(f"logistic regression on the 64 raw pixels:       test accuracy "
      f"{raw.score(X_test, y_test):.3f}")

plt = pyplot()
Z = PCA(2, random_state=0).fit(gan.transform(X_train)).transform(gan.transform(X_test))
fig, ax = plt.subplots(figsize=(6, 5))
points = ax.scatter(Z[:, 0], Z[:, 1], c=y_test, cmap="tab10", s=8)
fig.colorbar(points, ax=ax, label="true digit")
ax.set_title("GAN-EM embedding of held-out digits (PCA to 2-D)")
save(fig, "embedding.png")
