// Branches between blocks (the cf dialect, as convert-scf-to-cf leaves them):
// for each i, y[i] = x[i] * 2 when i % 3 == 0, x[i] + 1 when i % 3 == 1, else
// max(x[i], 0) chosen by a cond_br that reaches ^join twice with different
// arguments. The blocks are listed out of dominance order (^exit and ^join
// before the blocks that reach them), ^dead is unreachable, and the last
// block holds an scf.for (s = sum of y) inside a function of several blocks.
builtin.module {
  func.func @branches(%x: memref<${N}xf64>, %y: memref<${N}xf64>, %s: memref<f64>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c3 = arith.constant 3 : index
    %n = arith.constant ${N} : index
    %zero = arith.constant 0.0 : f64
    %one = arith.constant 1.0 : f64
    %two = arith.constant 2.0 : f64
    cf.br ^header(%c0 : index)
  ^exit:
    %total = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %zero) -> (f64) {
      %v = memref.load %y[%i] : memref<${N}xf64>
      %a = arith.addf %acc, %v : f64
      scf.yield %a : f64
    }
    memref.store %total, %s[] : memref<f64>
    func.return
  ^join(%r: f64, %j: index):
    memref.store %r, %y[%j] : memref<${N}xf64>
    %next = arith.addi %j, %c1 : index
    cf.br ^header(%next : index)
  ^dead:
    cf.br ^exit
  ^header(%i0: index):
    %more = arith.cmpi slt, %i0, %n : index
    cf.cond_br %more, ^body, ^exit
  ^body:
    %xi = memref.load %x[%i0] : memref<${N}xf64>
    %k = arith.remui %i0, %c3 : index
    cf.switch %k : index, [
      default: ^relu,
      0: ^double,
      1: ^plus_one(%one : f64)
    ]
  ^double:
    %d = arith.mulf %xi, %two : f64
    cf.br ^join(%d, %i0 : f64, index)
  ^plus_one(%o: f64):
    %p = arith.addf %xi, %o : f64
    cf.br ^join(%p, %i0 : f64, index)
  ^relu:
    %pos = arith.cmpf ogt, %xi, %zero : f64
    cf.cond_br %pos, ^join(%xi, %i0 : f64, index), ^join(%zero, %i0 : f64, index)
  }
}
