"""Fine-tuning: dataset preparation (`prepare`), feature extraction (`features`, cache format in
`dataset`), and the trainers that fit GPT and SoVITS on the cached features."""
