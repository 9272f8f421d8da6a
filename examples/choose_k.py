"""Choosing the number of clusters without labels: GridSearchCV with a label-free scorer.

Run:  python examples/choose_k.py      (about 3 minutes on a 2-core CPU)

``skganem.silhouette_scorer`` scores a fitted model by the silhouette of its clusters on the
held-out rows (in the input space, which is the same for every K). GridSearchCV fits one model
per K on 75 % of the rows and scores it on the rest. Saves ``figures/choose_k.png``.
See docs/benchmarks.md for how often this picks the true K.
"""

from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, ShuffleSplit

from _plotting import pyplot, save
from skganem import GANEMClustering, silhouette_scorer

X, y = load_digits(return_X_y=True)
ks = [6, 8, 10, 12, 14]
# n_init=1: one training run per fit (the default makes three on small image sets)
grid = GridSearchCV(GANEMClustering(image_shape=(8, 8), n_iter=6, n_init=1, random_state=0),
                    {"n_clusters": ks}, scoring=silhouette_scorer, refit=False,
                    cv=ShuffleSplit(1, test_size=0.25, random_state=0))
grid.fit(X)
scores = grid.cv_results_["mean_test_score"]
for k, s in zip(ks, scores):
    print(f"K={k:2d}  silhouette on held-out rows {s:.4f}")
print("chosen K:", grid.best_params_["n_clusters"], "(the digits have 10 classes)")

plt = pyplot()
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(ks, scores, "o-")
ax.axvline(10, color="grey", ls=":", label="true K")
ax.set_xlabel("n_clusters")
ax.set_ylabel("silhouette (held-out rows)")
ax.legend()
save(fig, "choose_k.png")
