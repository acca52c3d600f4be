"""Training of the text emotion classifier (myna.text.emotion) on sentences written for myna.

`python -m myna.train.emotion_text` fits the model on the training sentences (corpus.py), picks
its settings on the development set (dev.jsonl, never trained on), and writes
myna/text/emotion/data/model.json. The benchmark's evaluation set plays no part.
"""
