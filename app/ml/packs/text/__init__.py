"""Text packs: data read from Debian's packages (WordNet 3.0), nothing downloaded. See docs/data/."""
