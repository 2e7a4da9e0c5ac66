/* rules.c: placeholder until it lands. */
typedef int cgw_placeholder_;
