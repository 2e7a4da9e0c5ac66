/* cmd_user.c: placeholder */
typedef int cgw_placeholder_;
