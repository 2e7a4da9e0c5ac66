/* cmd_init.c: placeholder */
typedef int cgw_placeholder_;
