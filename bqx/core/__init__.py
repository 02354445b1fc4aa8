"""The family machinery: the declaration (Column, Family, @family), the registry, the runner."""
