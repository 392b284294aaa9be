mod codegen;
