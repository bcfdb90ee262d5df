"""``bench report``: tables, statistics, figures and an HTML page from run records alone.

Modules: ``load`` (read records through ``bench.results``, filter, group into rows; the plain-PEFT rows),
``tables`` (mean ± std over seeds, averages, costs), ``table`` (a table as data and its Markdown, LaTeX and
HTML renderers), ``stats`` (the bootstraps and Welch's test, the majority class, seed pairing), ``figures``
(matplotlib/seaborn), ``published`` (docs/reports.md#published-numbers as data), ``html`` (the page), ``build``
(all of it into one folder); ``provenance``, ``page_sections`` and ``results_page``: docs/results.md, the CPU
results page (``scripts/results_page.py``). Nothing here imports torch or the training code.
"""
