"""``bench report``: tables, statistics, figures and an HTML page from run records alone.

Modules: ``load`` (read records through ``bench.results``, filter, group into rows), ``tables`` (mean ± std
over seeds, averages, costs; Markdown, LaTeX, CSV, HTML), ``stats`` (paired bootstrap), ``figures``
(matplotlib/seaborn), ``published`` (docs/reports.md#published-numbers as data), ``html`` (the page), ``build`` (all of it into
one folder). Nothing here imports torch or the training code.
"""
