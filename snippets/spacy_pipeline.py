import spacy

# A blank pipeline needs no download: the tokenizer and the rule-based
# components below ship with spaCy itself.
nlp = spacy.blank("en")
nlp.add_pipe("sentencizer")  # (1)!
ruler = nlp.add_pipe("entity_ruler")  # (2)!
ruler.add_patterns([
    {"label": "ORG", "pattern": "Explosion AI"},
    {"label": "PRODUCT", "pattern": [{"LOWER": "llama"}, {"TEXT": "2"}]},
])

doc = nlp("spaCy was released by Explosion AI. It can't run Llama 2, but it tokenizes fast.")

print("tokens:   ", [token.text for token in doc])  # (3)!
print("sentences:", [sent.text for sent in doc.sents])
print("entities: ", [(ent.text, ent.label_) for ent in doc.ents])
