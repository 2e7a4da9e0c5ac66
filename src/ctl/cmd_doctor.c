/* cmd_doctor.c: placeholder */
typedef int cgw_placeholder_;
