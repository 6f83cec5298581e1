# Named targets: one per paper artefact, so `snakemake fig7` (or table2, paper, ...) builds just that
# artefact for every configured model and setting. Each lists the matching final targets of all_targets()
# (nothing that the configuration does not produce). The rules that write one table (table1, table2,
# table5, patching_summary, backup_layers, claims, published_vs_regenerated, paper) or one figure for every
# cell (fig3, fig4, fig6, fig7, fig9) are targets themselves: a name a producing rule has is left to it.


_RULE_NAMES = {r.name for r in workflow.rules}


if "fig1" not in _RULE_NAMES:

    rule fig1:
        input:
            _named("figures/fig1_"),
        localrule: True


if "fig3" not in _RULE_NAMES:

    rule fig3:
        input:
            _named("figures/fig3_"),
        localrule: True


if "fig4" not in _RULE_NAMES:

    rule fig4:
        input:
            _named("figures/fig4_"),
        localrule: True


if "fig6" not in _RULE_NAMES:

    rule fig6:
        input:
            _named("figures/fig6_"),
        localrule: True


if "fig7" not in _RULE_NAMES:

    rule fig7:
        input:
            _named("figures/fig7_"),
        localrule: True


if "fig9" not in _RULE_NAMES:

    rule fig9:
        input:
            _named("figures/fig9_"),
        localrule: True


rule table4:
    input:
        "results/tables/published_vs_regenerated.csv",
    localrule: True


rule probing:
    input:
        _named("figures/fig4_", "figures/probe_depth_", "results/tables/probes."),
    localrule: True


rule patching:
    input:
        _named("figures/fig3_", "figures/fig6_", "figures/fig7_", "results/tables/patching_summary."),
    localrule: True


rule ablation_all:
    input:
        _named("figures/table5_", "figures/fig9_", "results/tables/table5.", "results/tables/backup_layers."),
    localrule: True


rule amplification:
    input:
        _named("figures/fig_amplification_", "results/tables/table2."),
    localrule: True


rule published:
    input:
        expand("results/tables/published_vs_regenerated.{ext}", ext=["csv", "md", "tex"]),
    localrule: True
