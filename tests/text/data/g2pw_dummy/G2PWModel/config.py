manual_seed = 1313
model_source = 'bert-base-chinese'
window_size = 32
use_mask = True
use_char_phoneme = False
