"""toondb's SQL engine: pyparsing grammar -> AST -> planner -> operators over B+tree cursors.

Reading order: grammar.py (parse; the dialect in grammar_expressions.py and
grammar_statements.py), ast.py, catalog.py (where tables live; the key and row
formats are toondb/codec/keycode.py and rowcodec.py), types.py (SQLite's value
semantics), expressions.py (expressions compiled to closures), planner/ (access
paths, joins, the select core, compound selects, WITH and views), executor.py
(the operators), compiled.py (a compiled statement), engine.py (compiling and
caching statements; SELECT, PRAGMA, EXPLAIN), dml.py and writer.py (INSERT,
UPDATE, DELETE and how a row reaches its table and indexes), ddl.py (CREATE,
DROP, ALTER), session.py (the entry points), result.py. docs/sql.md is the guide.
"""
