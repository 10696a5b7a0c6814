// Room for the resources library (issue [2]); nothing is exported yet.
export {};
