"""Write src/gradcli/language/_tables.py: the LALR tables lark makes of grammars/gradcli.lark.

Run after changing the grammar; tests/test_language_parser.py fails while the file is stale.
"""

from gradcli.language.grammar import write_tables

if __name__ == "__main__":
    print(f"wrote {write_tables()}")
