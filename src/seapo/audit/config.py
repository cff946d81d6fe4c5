"""Settings of the shortcut audit (``seapo audit``; the ``audit`` section of ``seapo inject``)."""

from __future__ import annotations

from pydantic import Field

from seapo.config import SeapoConfig


class AuditConfig(SeapoConfig):
    """Settings of :func:`seapo.audit.audit_pairs`."""

    shortcut_audit: bool = Field(True, description="Run the audit (in an injection run: summary.json's shortcut_audit; "
                          "ignored by `seapo audit`, which always runs it).")
    ngram_max: int = Field(3, ge=1, le=5, description="Longest word n-gram the classifier sees (1 to this).")
    n_features: int = Field(1 << 20, ge=1 << 10, le=1 << 24, description="Hashed feature space of the n-grams "
                            "(HashingVectorizer): a fixed size, so memory and time do not grow with the vocabulary.")
    test_fraction: float = Field(0.3, gt=0, lt=1, description="Share of the records held out for testing; the "
                                 "split is by record, so a record's positive is never seen in training and testing.")
    min_test_records: int = Field(20, ge=2, description="Fewer test records than this for a type: 'not enough "
                                  "pairs' instead of an accuracy.")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap resamples of the test records for the 95% interval "
                           "(0: no interval).")
    sgd_alpha: float = Field(1e-5, gt=0, description="L2 regularization of the logistic regression (SGDClassifier's "
                         "alpha).")
    sgd_epochs: int = Field(20, ge=1, description="Passes of the stochastic gradient descent over the training texts.")
    warn_above: float = Field(0.65, ge=0.5, le=1.0, description="Warn when a type's pairwise accuracy is above "
                              "this: the negatives carry a surface shortcut.")
    top_ngrams: int = Field(10, ge=0, le=100, description="Most predictive n-grams listed per direction.")
    ngram_sample_records: int = Field(500, ge=10, description="Training records whose n-grams are hashed back to "
                                      "name the top features (a sample: hashing every n-gram back costs more than "
                                      "the training).")
    seed: int = Field(0, description="Seed of the record split, the bootstrap and the classifier.")
