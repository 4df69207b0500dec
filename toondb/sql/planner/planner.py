"""Planner: the planning context of one statement, and its entry point ``plan_select``.

The parts of planning are functions in the other modules of this package; each
takes the Planner for what they share: the catalog, the statement's Ctx, its
ExprCompiler (which plans subqueries back through ``subplan``) and the WITH
names in scope.
"""

from __future__ import annotations

from typing import Any

from toondb.errors import SchemaError, SQLError
from toondb.sql import ast
from toondb.sql.catalog import Catalog
from toondb.sql.executor import Ctx
from toondb.sql.expressions import ExprCompiler
from toondb.sql.planner.common import SelectPlan
from toondb.sql.planner.compound import plan_compound, plan_values
from toondb.sql.planner.ctes import CteBinding, bind
from toondb.sql.planner.joins import resolve_from
from toondb.sql.planner.select_core import plan_select_core
from toondb.sql.scope import Scope


class Planner:
    """Plans the SELECTs of one statement (its subqueries, WITH names and views too)."""

    def __init__(self, catalog: Catalog, ctx: Ctx, params: list[Any]) -> None:
        self.catalog = catalog
        self.ctx = ctx
        self.ec = ExprCompiler(params, self)
        self.cte_env: list[CteBinding] = []  # WITH names in scope, innermost last
        self.expanding: set[int] = set()  # ids of the bindings being planned
        self.view_depth = 0  # views being planned inside one another

    # ------------------------------------------------------------ asked by the ExprCompiler

    def subplan(self, select: ast.Select, parent: Scope | None) -> tuple[SelectPlan, Scope | None]:
        plan = self.plan_select(select, parent)
        return plan, parent

    def scope_for_affinity(self, core: ast.SelectCore, parent: Scope | None) -> Scope | None:
        try:
            sources, _ = resolve_from(self, core, parent, plan_subqueries=False)
        except (SchemaError, SQLError):
            return None
        return Scope(sources, parent)

    # ------------------------------------------------------------ SELECT

    def with_ctes(self, ctes: list[ast.Cte]) -> None:
        """Put the names of a statement-level WITH (INSERT/UPDATE/DELETE) in scope
        for everything this planner plans."""
        self.cte_env = bind(self.cte_env, ctes)

    def plan_select(self, select: ast.Select, parent: Scope | None = None) -> SelectPlan:
        if select.ctes:
            saved = self.cte_env
            self.cte_env = bind(saved, select.ctes)
            try:
                return self._plan_select_body(select, parent)
            finally:
                self.cte_env = saved
        return self._plan_select_body(select, parent)

    def _plan_select_body(self, select: ast.Select, parent: Scope | None) -> SelectPlan:
        if len(select.cores) == 1:
            return self.plan_core(
                select.cores[0], parent, select.order_by, select.limit, select.offset
            )
        return plan_compound(self, select, parent)

    def plan_core(
        self,
        core: ast.SelectCore,
        parent: Scope | None,
        order_by: list[ast.OrderItem],
        limit: ast.Expr | None,
        offset: ast.Expr | None,
    ) -> SelectPlan:
        """One core of a SELECT: a VALUES list or a SELECT core."""
        if core.values is not None:
            return plan_values(self, core, parent, order_by, limit, offset)
        return plan_select_core(self, core, parent, order_by, limit, offset)
