"""Pure-Python side of speculation: budgets, plan layout, coverage metrics."""
