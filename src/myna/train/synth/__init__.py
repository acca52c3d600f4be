"""The synthetic training corpus of the bundled default voice (`myna data synth`).

Only local, freely licensed voices speak it (flite, festival + festvox, espeak-ng; never Piper voices),
each as a subprocess; pseudo-speakers come from shifting pitch, formants and tempo with Rubber Band
(also a subprocess). Text comes from myna's own sentence generator; `heldout.txt` is reserved for the
quality benchmark. Modules: voices, augment, sentences (+ words), licences, corpus.
"""
