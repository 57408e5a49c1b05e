// An entry calling private helpers: one with a scalar argument, one with its
// own temporary (a workspace slice of its own), one returning a scalar.
//   t = 2 x + y;  out = t*t + 1;  d[] = dot(x, out)
builtin.module {
  func.func private @scale_add(%a: memref<${N}x${T}>, %b: memref<${N}x${T}>, %alpha: ${T}, %out: memref<${N}x${T}>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = arith.constant ${N} : index
    scf.for %i = %c0 to %n step %c1 {
      %av = memref.load %a[%i] : memref<${N}x${T}>
      %bv = memref.load %b[%i] : memref<${N}x${T}>
      %p = arith.mulf %alpha, %av : ${T}
      %s = arith.addf %p, %bv : ${T}
      memref.store %s, %out[%i] : memref<${N}x${T}>
    }
    func.return
  }
  func.func private @square_plus_one(%a: memref<${N}x${T}>, %out: memref<${N}x${T}>) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = arith.constant ${N} : index
    %one = arith.constant 1.0 : ${T}
    %tmp = memref.alloc() : memref<${N}x${T}>
    scf.for %i = %c0 to %n step %c1 {
      %v = memref.load %a[%i] : memref<${N}x${T}>
      %sq = arith.mulf %v, %v : ${T}
      memref.store %sq, %tmp[%i] : memref<${N}x${T}>
    }
    scf.for %i = %c0 to %n step %c1 {
      %v = memref.load %tmp[%i] : memref<${N}x${T}>
      %r = arith.addf %v, %one : ${T}
      memref.store %r, %out[%i] : memref<${N}x${T}>
    }
    memref.dealloc %tmp : memref<${N}x${T}>
    func.return
  }
  func.func private @dot(%a: memref<${N}x${T}>, %b: memref<${N}x${T}>) -> ${T} {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = arith.constant ${N} : index
    %zero = arith.constant 0.0 : ${T}
    %r = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %zero) -> (${T}) {
      %av = memref.load %a[%i] : memref<${N}x${T}>
      %bv = memref.load %b[%i] : memref<${N}x${T}>
      %p = arith.mulf %av, %bv : ${T}
      %s = arith.addf %acc, %p : ${T}
      scf.yield %s : ${T}
    }
    func.return %r : ${T}
  }
  func.func @entry(%x: memref<${N}x${T}>, %y: memref<${N}x${T}>, %out: memref<${N}x${T}>, %d: memref<${T}>) {
    %two = arith.constant 2.0 : ${T}
    %t = memref.alloc() : memref<${N}x${T}>
    func.call @scale_add(%x, %y, %two, %t) : (memref<${N}x${T}>, memref<${N}x${T}>, ${T}, memref<${N}x${T}>) -> ()
    func.call @square_plus_one(%t, %out) : (memref<${N}x${T}>, memref<${N}x${T}>) -> ()
    %dv = func.call @dot(%x, %out) : (memref<${N}x${T}>, memref<${N}x${T}>) -> ${T}
    memref.store %dv, %d[] : memref<${T}>
    memref.dealloc %t : memref<${N}x${T}>
    func.return
  }
}
