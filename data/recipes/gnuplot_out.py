"""gnuplot_out.py: renders a recipe's gnuplot figure in every form the recipes make: PNG, PDF,
SVG, and gnuplot's cairolatex (NAME_tex.tex with NAME_tex.pdf: LaTeX sets the text in the
paper's fonts). Imported by the recipes' report scripts (stability_report.py,
quality_report.py); writes the standalone script NAME.gp beside the figures."""
import os
import subprocess


def render(d, name, gp, w_in, h_in):
    """gp: the figure's commands, without terminal and output; in enhanced-text form, with
    exponents as 10^{%L} (turned into LaTeX math for the .tex form)"""
    px = (int(w_in * 100), int(h_in * 100))
    with open(os.path.join(d, name + ".gp"), "w") as fh:
        fh.write("# gnuplot -e \"set terminal pngcairo size %d,%d; set output '%s.png'\" %s.gp\n"
                 % (px[0], px[1], name, name) + gp)
    forms = [("pngcairo size %d,%d font ',10'" % px, name + ".png", gp),
             ("pdfcairo size %gin,%gin font ',9'" % (w_in, h_in), name + ".pdf", gp),
             ("svg size %d,%d font 'sans,10'" % px, name + ".svg", gp),
             ("cairolatex pdf input size %gin,%gin" % (w_in, h_in), name + "_tex.tex",
              gp.replace("'10^{%L}'", "'$10^{%L}$'").replace("log_{10}", "$\\\\log_{10}$"))]
    for term, out, body in forms:
        script = "set terminal %s\nset output '%s'\n%s" % (term, out, body)
        p = subprocess.run(["gnuplot"], input=script, text=True, cwd=d, capture_output=True)
        if p.returncode != 0 or not os.path.exists(os.path.join(d, out)) or \
                not os.path.getsize(os.path.join(d, out)):
            raise SystemExit("%s: gnuplot failed on %s: %s" % (name, out, p.stderr.strip()))
