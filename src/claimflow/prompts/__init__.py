"""Versioned prompt templates and their registry."""

from claimflow.prompts.registry import TemplateRegistry
from claimflow.prompts.template import PromptTemplate, RenderedPrompt

__all__ = ["PromptTemplate", "RenderedPrompt", "TemplateRegistry"]
