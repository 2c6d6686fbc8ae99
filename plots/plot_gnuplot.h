/* plot_gnuplot.h: running gnuplot on a script in the output directory.
 *
 * The script on disk is what renders: gnuplot's stdin gets only `fmt = ...; out = ...` and
 * `load "NAME.gp"`, with the output directory as its working directory. So every figure is
 * exactly what `cd DIR && gnuplot NAME.gp` reproduces, and gnuplot's errors name the script's
 * file and line. */
#ifndef NS_PLOT_GNUPLOT_H
#define NS_PLOT_GNUPLOT_H
#include <stddef.h>

/* the gnuplot executable on PATH into path; NS_ERR_IO with the Debian package to install */
int ns_gnuplot_find(char *path, size_t n, char *msg, size_t msglen);

/* Renders dir/name.gp to dir/name.fmt (fmt "png", "pdf" or "svg"): gnuplot writes
 * name.fmt.partial-<pid>, which is renamed only if gnuplot exits 0 and wrote a non-empty file;
 * otherwise it is removed and NS_ERR_IO comes back with gnuplot's error line. */
int ns_gnuplot_render(const char *gnuplot, const char *dir, const char *name, const char *fmt,
                      char *msg, size_t msglen);

#endif
