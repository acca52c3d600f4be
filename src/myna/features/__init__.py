"""Feature extractors loaded from local files: content codes (HuBERT), Chinese BERT, speaker embeddings."""
