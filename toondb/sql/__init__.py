"""toondb's SQL engine: pyparsing grammar -> AST -> planner -> operators over B+tree cursors.

Reading order: lexer.py (text -> token codes; the scan in C, _lexer.pyx),
grammar.py (parse; the dialect in grammar_elements.py, grammar_expressions.py and
grammar_statements.py), statements.py (the statement caches), ast.py, catalog.py (where tables live; the key and row
formats are toondb/codec/keycode.py and rowcodec.py), types.py (SQLite's value
semantics), expressions.py (expressions compiled to closures), functions.py (the
function table; user_functions.py, an application's own; the libraries
fn_datetime.py, fn_json.py with jsonvalue.py, fn_printf.py; collation.py), planner/ (access paths, joins, the select core,
compound selects, WITH and views), executor.py (the operators), compiled.py (a
compiled statement), engine.py (compiling and caching statements; SELECT, PRAGMA,
EXPLAIN), dml.py and writer.py (INSERT, UPDATE, DELETE and how a row reaches its
table and indexes; sequence.py, AUTOINCREMENT), ddl.py (CREATE, DROP, ALTER; rename.py
carries renames into what names the table or column), session.py (the entry
points), result.py, dump.py (a database as SQL, as sqlite3's iterdump). schema.py and describe.py show the schema and result column types as
plain values to readers outside the engine (the CLI, the DB-API driver).
docs/sql.md is the guide.
"""
