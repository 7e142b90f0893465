import llama_notes

print(f"llama-notes {llama_notes.__version__}")
