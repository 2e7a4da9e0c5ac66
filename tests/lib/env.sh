# env.sh placeholder
