"""Engines that run the pipeline's passes: ``local`` (one process or ``--workers N``) and ``ray``."""
