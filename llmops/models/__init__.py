"""Base models: the reference model built here (corpus, tokenizer, pretraining, cache) and the one base-model resolver."""
