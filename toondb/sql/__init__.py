"""toondb's SQL engine: pyparsing grammar -> AST -> planner -> operators over B+tree cursors.

Reading order: grammar.py (the dialect), ast.py, catalog.py (where tables live),
keycode.py and rowcodec.py (the key and row formats), types.py (SQLite's value
semantics), expressions.py (expressions compiled to closures), planner.py
(access paths and joins), executor.py (the operators), engine.py (statements),
api.py (``execute_sql`` on Database and Transaction). schema.py shows the schema as plain
values to readers outside the engine (the CLI). docs/sql.md is the guide.
"""
